/// Prism's op types, registered in `OpRegistry` from the start (their schemas are PrismGraph's
/// standard ones).
let standardOps: [(kind: String, make: OpRegistry.Maker)] = [
    entry(Linear.self), entry(Conv2DLayer.self), entry(MaxPool2DLayer.self), entry(AvgPool2DLayer.self), entry(AdaptiveAvgPool2DLayer.self),
    entry(BatchNorm1D.self), entry(BatchNorm2D.self), entry(ReLU.self), entry(GELU.self), entry(Sigmoid.self), entry(Tanh.self),
    entry(LeakyReLU.self), entry(ELU.self), entry(SiLU.self), entry(Hardswish.self), entry(Flatten.self), entry(Softmax.self),
    entry(Dropout.self), entry(Add.self), entry(Sub.self), entry(Mul.self), entry(Div.self), entry(Pow.self),
    entry(Neg.self), entry(Sqrt.self), entry(Exp.self), entry(Log.self), entry(Erf.self), entry(Reciprocal.self),
    entry(Hardsigmoid.self), entry(Hardtanh.self), entry(PReLU.self), entry(Cat.self), entry(LayerNormLayer.self), entry(GroupNorm.self), entry(Expand.self), entry(FakeQuantize.self), entry(PatchEmbedding.self),
    entry(TransformerBlock.self), entry(ClassTokenLayer.self), entry(Embedding.self), entry(IndexSelect.self),
    entry(CompareOp<EqualKind>.self), entry(CompareOp<LessKind>.self), entry(CompareOp<GreaterKind>.self), entry(Where.self), entry(Cast.self), entry(InputNode.self), entry(BroadcastTo.self),
    entry(Reshape.self), entry(Permute.self), entry(Narrow.self), entry(MatMul.self), entry(LogSoftmax.self),
    entry(Reduction<MeanKind>.self), entry(Reduction<SumKind>.self), entry(Reduction<AmaxKind>.self),
    entry(ConvTranspose2DLayer.self), entry(Upsample.self), entry(Pad.self),
]

private func entry<T: Op>(_ type: T.Type) -> (kind: String, make: OpRegistry.Maker) {
    (T.Schema.kind, OpRegistry.maker(T.self))
}
