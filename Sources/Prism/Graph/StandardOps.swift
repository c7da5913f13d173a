/// Prism's op kinds, registered in `OpRegistry` from the start.
let standardOps: [OpDefinition] = [
    OpDefinition(Linear.self), OpDefinition(Conv2DLayer.self), OpDefinition(MaxPool2DLayer.self), OpDefinition(AvgPool2DLayer.self),
    OpDefinition(ReLU.self), OpDefinition(GELU.self), OpDefinition(Sigmoid.self), OpDefinition(Tanh.self),
    OpDefinition(Flatten.self), OpDefinition(Softmax.self), OpDefinition(Dropout.self), OpDefinition(Add.self), OpDefinition(Cat.self),
    OpDefinition(BatchNorm1D.self), OpDefinition(BatchNorm2D.self), OpDefinition(AdaptiveAvgPool2DLayer.self),
    OpDefinition(LeakyReLU.self), OpDefinition(ELU.self), OpDefinition(SiLU.self), OpDefinition(Hardswish.self),
    OpDefinition(LayerNormLayer.self), OpDefinition(PatchEmbedding.self), OpDefinition(TransformerBlock.self), OpDefinition(ClassTokenLayer.self),
]
