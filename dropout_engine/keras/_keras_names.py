"""The public names of Keras 3.15's namespaces (``dir(keras.layers)`` and
so on, generated from the installed Keras), and what to use instead of the
ones dropout_engine does not offer.  Read only when a name is missing (see
``_reexport.unsupported``): a Keras name gets an error saying it is not
supported and what to use; any other name is an ordinary AttributeError.
"""

KERAS_NAMES = {
    "keras": """
        DTypePolicy FloatDTypePolicy Function Initializer Input InputSpec
        KerasTensor Layer Loss Metric Model Operation Optimizer Quantizer
        Regularizer RematScope Sequential StatelessScope SymbolicScope Variable
        activations applications backend callbacks config constraints datasets
        device distillation distribution dtype_policies export initializers layers
        legacy losses metrics mixed_precision models name_scope ops optimizers
        preprocessing quantizers random regularizers remat saving tree utils version
        visualization wrappers""",
    "layers": """
        Activation ActivityRegularization AdaptiveAveragePooling1D
        AdaptiveAveragePooling2D AdaptiveAveragePooling3D AdaptiveMaxPooling1D
        AdaptiveMaxPooling2D AdaptiveMaxPooling3D Add AdditiveAttention AlphaDropout
        Attention AugMix AutoContrast Average AveragePooling1D AveragePooling2D
        AveragePooling3D AvgPool1D AvgPool2D AvgPool3D BatchNormalization
        Bidirectional CategoryEncoding CenterCrop Concatenate
        ContrastLimitedAdaptiveHistogramEqualization Conv1D Conv1DTranspose Conv2D
        Conv2DTranspose Conv3D Conv3DTranspose ConvLSTM1D ConvLSTM2D ConvLSTM3D
        Convolution1D Convolution1DTranspose Convolution2D Convolution2DTranspose
        Convolution3D Convolution3DTranspose Cropping1D Cropping2D Cropping3D CutMix
        Dense DepthwiseConv1D DepthwiseConv2D Discretization Dot Dropout ELU
        EinsumDense Embedding Equalization Flatten FlaxLayer GRU GRUCell
        GaussianDropout GaussianNoise GlobalAveragePooling1D GlobalAveragePooling2D
        GlobalAveragePooling3D GlobalAvgPool1D GlobalAvgPool2D GlobalAvgPool3D
        GlobalMaxPool1D GlobalMaxPool2D GlobalMaxPool3D GlobalMaxPooling1D
        GlobalMaxPooling2D GlobalMaxPooling3D GroupNormalization GroupQueryAttention
        HashedCrossing Hashing Identity Input InputLayer InputSpec IntegerLookup
        JaxLayer LSTM LSTMCell Lambda Layer LayerNormalization LeakyReLU Masking
        MaxNumBoundingBoxes MaxPool1D MaxPool2D MaxPool3D MaxPooling1D MaxPooling2D
        MaxPooling3D Maximum MelSpectrogram Minimum MixUp MultiHeadAttention
        Multiply Normalization PReLU Permute Pipeline RMSNormalization RNN
        RandAugment RandomBrightness RandomColorDegeneration RandomColorJitter
        RandomContrast RandomCrop RandomElasticTransform RandomErasing RandomFlip
        RandomGaussianBlur RandomGrayscale RandomHue RandomInvert RandomPerspective
        RandomPosterization RandomRotation RandomSaturation RandomSharpness
        RandomShear RandomTranslation RandomZoom ReLU RepeatVector Rescaling Reshape
        Resizing ReversibleEmbedding STFTSpectrogram SeparableConv1D SeparableConv2D
        SeparableConvolution1D SeparableConvolution2D SimpleRNN SimpleRNNCell
        Softmax Solarization SpatialDropout1D SpatialDropout2D SpatialDropout3D
        SpectralNormalization StackedRNNCells StringLookup Subtract TFSMLayer
        TextVectorization TimeDistributed TorchModuleWrapper UnitNormalization
        UpSampling1D UpSampling2D UpSampling3D Wrapper ZeroPadding1D ZeroPadding2D
        ZeroPadding3D add average concatenate deserialize dot maximum minimum
        multiply serialize subtract""",
    "models": """
        Model Sequential clone_model load_model model_from_json save_model""",
    "optimizers": """
        Adadelta Adafactor Adagrad Adam AdamW Adamax Ftrl Lamb Lion
        LossScaleOptimizer MultiOptimizer Muon Nadam Optimizer OptimizerMap RMSprop
        SGD ScheduleFreeAdamW deserialize get legacy schedules serialize""",
    "optimizers.schedules": """
        CosineDecay CosineDecayRestarts ExponentialDecay InverseTimeDecay
        LearningRateSchedule PiecewiseConstantDecay PolynomialDecay deserialize
        serialize""",
    "losses": """
        BinaryCrossentropy BinaryFocalCrossentropy CTC CategoricalCrossentropy
        CategoricalFocalCrossentropy CategoricalGeneralizedCrossEntropy
        CategoricalHinge Circle CosineSimilarity Dice Hinge Huber KLDivergence
        LogCosh Loss MeanAbsoluteError MeanAbsolutePercentageError MeanSquaredError
        MeanSquaredLogarithmicError Poisson SparseCategoricalCrossentropy
        SquaredHinge Tversky binary_crossentropy binary_focal_crossentropy
        categorical_crossentropy categorical_focal_crossentropy
        categorical_generalized_cross_entropy categorical_hinge circle
        cosine_similarity ctc deserialize dice get hinge huber kl_divergence
        log_cosh mean_absolute_error mean_absolute_percentage_error
        mean_squared_error mean_squared_logarithmic_error poisson serialize
        sparse_categorical_crossentropy squared_hinge tversky""",
    "metrics": """
        AUC Accuracy BinaryAccuracy BinaryCrossentropy BinaryIoU CategoricalAccuracy
        CategoricalCrossentropy CategoricalHinge ConcordanceCorrelation
        CosineSimilarity F1Score FBetaScore FalseNegatives FalsePositives Hinge IoU
        KLDivergence LogCoshError Mean MeanAbsoluteError MeanAbsolutePercentageError
        MeanIoU MeanMetricWrapper MeanSquaredError MeanSquaredLogarithmicError
        Metric OneHotIoU OneHotMeanIoU PearsonCorrelation Poisson Precision
        PrecisionAtRecall R2Score Recall RecallAtPrecision RootMeanSquaredError
        SensitivityAtSpecificity SparseCategoricalAccuracy
        SparseCategoricalCrossentropy SparseTopKCategoricalAccuracy
        SpecificityAtSensitivity SquaredHinge Sum TopKCategoricalAccuracy
        TrueNegatives TruePositives binary_accuracy binary_crossentropy
        binary_focal_crossentropy categorical_accuracy categorical_crossentropy
        categorical_focal_crossentropy categorical_hinge concordance_correlation
        deserialize get hinge huber kl_divergence log_cosh mean_absolute_error
        mean_absolute_percentage_error mean_squared_error
        mean_squared_logarithmic_error pearson_correlation poisson serialize
        sparse_categorical_accuracy sparse_categorical_crossentropy
        sparse_top_k_categorical_accuracy squared_hinge top_k_categorical_accuracy""",
    "callbacks": """
        BackupAndRestore CSVLogger Callback CallbackList EarlyStopping History
        LambdaCallback LearningRateScheduler ModelCheckpoint OrbaxCheckpoint
        ProgbarLogger ReduceLROnPlateau RemoteMonitor SwapEMAWeights TensorBoard
        TerminateOnNaN""",
    "initializers": """
        Constant GlorotNormal GlorotUniform HeNormal HeUniform Identity
        IdentityInitializer Initializer LecunNormal LecunUniform Ones Orthogonal
        OrthogonalInitializer RandomNormal RandomUniform STFT STFTInitializer
        TruncatedNormal VarianceScaling Zeros constant deserialize get glorot_normal
        glorot_uniform he_normal he_uniform identity lecun_normal lecun_uniform ones
        orthogonal random_normal random_uniform serialize stft truncated_normal
        variance_scaling zeros""",
    "regularizers": """
        L1 L1L2 L2 OrthogonalRegularizer Regularizer deserialize get l1 l1_l2 l2
        orthogonal_regularizer serialize""",
    "constraints": """
        Constraint MaxNorm MinMaxNorm NonNeg UnitNorm deserialize get max_norm
        min_max_norm non_neg serialize unit_norm""",
    "activations": """
        celu deserialize elu exponential gelu get glu hard_shrink hard_sigmoid
        hard_silu hard_swish hard_tanh leaky_relu linear log_sigmoid log_softmax
        mish relu relu6 selu serialize sigmoid silu soft_shrink softmax softplus
        softsign sparse_plus sparse_sigmoid sparsemax squareplus swish tanh
        tanh_shrink threshold""",
    "saving": """
        CustomObjectScope KerasFileEditor custom_object_scope
        deserialize_keras_object get_custom_objects get_registered_name
        get_registered_object load_model load_weights register_keras_serializable
        save_model save_weights serialize_keras_object""",
    "utils": """
        Config CustomObjectScope FeatureSpace Progbar PyDataset Sequence
        array_to_img audio_dataset_from_directory bounding_boxes clear_session
        custom_object_scope deserialize_keras_object disable_interactive_logging
        enable_interactive_logging get_custom_objects get_file get_registered_name
        get_registered_object get_source_inputs image_dataset_from_directory
        img_to_array is_interactive_logging_enabled is_keras_tensor legacy load_img
        model_to_dot normalize pack_x_y_sample_weight pad_sequences plot_model
        register_keras_serializable save_img serialize_keras_object set_random_seed
        split_dataset standardize_dtype text_dataset_from_directory
        timeseries_dataset_from_array to_categorical unpack_x_y_sample_weight""",
}

_IMAGES = ("flatten the images to [batch, features] with numpy "
           "(x.reshape(len(x), -1)) and use Dense layers")
_SEQUENCES = ("recurrent layers are not supported; flatten each sequence into "
              "features (x.reshape(len(x), -1)) for Dense layers")
_PREPROCESS = "preprocess the data with numpy or scikit-learn before fit/predict"
_OPTIMIZERS = "use SGD, Adam, AdamW or RMSprop"
_SKLEARN_METRIC = ("compute it on model.predict(x) with scikit-learn "
                   "(sklearn.metrics)")

# (namespace, name prefix or exact name) -> advice; the first match wins.
HINTS = [
    ("layers", ("Conv", "Convolution", "SeparableConv", "DepthwiseConv",
                "MaxPool", "AvgPool", "AveragePool", "GlobalMaxPool",
                "GlobalAvgPool", "GlobalAveragePool", "AdaptiveMaxPool",
                "AdaptiveAveragePool", "Cropping", "UpSampling", "ZeroPadding",
                "SpatialDropout"), _IMAGES),
    ("layers", ("LSTM", "GRU", "SimpleRNN", "RNN", "Bidirectional",
                "TimeDistributed", "StackedRNNCells", "Masking"), _SEQUENCES),
    ("layers", ("Flatten", "Reshape", "Permute", "RepeatVector"),
     "reshape x to [batch, features] with numpy before fit/predict"),
    ("layers", ("Normalization", "Rescaling", "Discretization", "CategoryEncoding",
                "Hashing", "HashedCrossing", "IntegerLookup", "StringLookup",
                "TextVectorization", "Random", "Resizing", "CenterCrop"), _PREPROCESS),
    ("layers", ("Lambda",), "an arbitrary Python function cannot run inside the C "
     "layers; use an activation layer or Dense's activation="),
    ("layers", ("ActivityRegularization",), "regularize the weights instead "
     "(Dense's kernel_regularizer=)"),
    ("layers", ("Identity",), "leave the layer out (or use Activation('linear'))"),
    ("optimizers", ("Adadelta", "Adafactor", "Adagrad", "Adamax", "Ftrl", "Lamb",
                    "Lion", "Muon", "Nadam", "ScheduleFreeAdamW", "LossScaleOptimizer",
                    "MultiOptimizer", "OptimizerMap", "legacy"), _OPTIMIZERS),
    ("metrics", ("AUC", "Precision", "Recall", "F1Score", "FBetaScore", "IoU",
                 "MeanIoU", "OneHotIoU", "OneHotMeanIoU", "BinaryIoU", "R2Score",
                 "True", "False", "SensitivityAt", "SpecificityAt", "PrecisionAt",
                 "RecallAt", "TopK", "SparseTopK", "top_k", "sparse_top_k"),
     _SKLEARN_METRIC),
    ("callbacks", ("LearningRateScheduler",), "use a schedule of "
     "optimizers.schedules (it runs inside the C loop) or ReduceLROnPlateau"),
    ("constraints", ("MinMaxNorm", "min_max_norm", "UnitNorm", "unit_norm"),
     "use MaxNorm or NonNeg"),
    ("models", ("clone_model",), "copy.deepcopy(model) copies a model with its "
     "weights; Sequential.from_config(model.get_config()) makes fresh ones"),
    ("models", ("model_from_json",), "use Sequential.from_config(json.loads(text))"),
    ("saving", ("CustomObjectScope", "custom_object_scope", "get_custom_objects",
                "register_keras_serializable", "get_registered_name",
                "get_registered_object"), "custom Python objects cannot run inside "
     "the C engine; models hold only dropout_engine's layers"),
    ("utils", ("CustomObjectScope", "custom_object_scope", "get_custom_objects",
               "register_keras_serializable", "get_registered_name",
               "get_registered_object"), "custom Python objects cannot run inside "
     "the C engine; models hold only dropout_engine's layers"),
    ("utils", ("normalize", "pad_sequences", "timeseries_dataset_from_array",
               "image_dataset_from_directory", "text_dataset_from_directory",
               "audio_dataset_from_directory", "split_dataset", "FeatureSpace"),
     _PREPROCESS),
    ("utils", ("clear_session",), "dropout_engine keeps no global graph or "
     "session: the call can go"),
    ("keras", ("ops",), "use numpy, or dropout_engine.ops for the engine's C kernels"),
    ("keras", ("backend",), "dropout_engine has one backend (its C engine): "
     "keras.utils.set_random_seed seeds it; keras.backend.clear_session can go"),
    ("keras", ("wrappers",), "use dropout_engine.sklearn's KerasClassifier / "
     "KerasRegressor (scikeras's API)"),
    ("keras", ("mixed_precision", "dtype_policies", "DTypePolicy", "FloatDTypePolicy"),
     "the engine computes in float32 (int8 after model.quantize('int8'))"),
    ("keras", ("preprocessing",), _PREPROCESS),
    ("keras", ("datasets",), "dropout_engine.datasets.load_digits() loads the "
     "8x8 digits shipped in the package, as keras.datasets' load_data does"),
    ("keras", ("applications",), "pretrained networks are not available; "
     "dropout_engine trains MLPs"),
]
