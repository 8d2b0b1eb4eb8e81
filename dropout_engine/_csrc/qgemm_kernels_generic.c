/* The portable int8 panel kernel with the baseline flags (qgemm_kernels.inc). */
#define DE_QK_NAME de_qgemm_generic
#define DE_QK_LABEL "generic"
#include "qgemm_kernels.inc"
