/* The portable int8 panel kernel compiled with -mavx2 (qgemm_kernels.inc). */
#define DE_QK_NAME de_qgemm_avx2
#define DE_QK_LABEL "avx2"
#include "qgemm_kernels.inc"
