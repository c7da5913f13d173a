import Foundation
import Prism
import PrismExplain
import PrismReference
import PrismTestSupport

/// f(x) = W·vec(x) + b on inputs of any shape, W [classes, elements]: every gradient method has a
/// closed form on it.
struct AttributionLinearModel {
    let inputShape: [Int]
    let classes: Int
    let weight: [Float]
    let bias: [Float]

    init(inputShape: [Int], classes: Int, seed: UInt64) {
        self.inputShape = inputShape
        self.classes = classes
        let d = inputShape.reduce(1, *)
        weight = seededFloats(classes * d, seed: seed)
        bias = seededFloats(classes, seed: seed &+ 1)
    }

    var elementCount: Int { inputShape.reduce(1, *) }

    func model(_ engine: Engine) throws -> DifferentiableModel {
        let w = try Tensor(weight, shape: [classes, elementCount], engine: engine)
        let b = try Tensor(bias, shape: [classes], engine: engine)
        return DifferentiableModel(engine: engine, inputShape: inputShape, classCount: classes) { x in
            try linear(x.reshaped([x.shape[0], -1]), weight: w, bias: b)
        }
    }

    func w(_ c: Int, _ e: Int) -> Double { Double(weight[c * elementCount + e]) }

    /// f_c(x) in Double.
    func output(_ x: [Float], _ c: Int) -> Double {
        (0..<elementCount).reduce(Double(bias[c])) { $0 + w(c, $1) * Double(x[$1]) }
    }
}

/// A `Model`'s logits computed on the host in Double from its parameters (PrismReference ops):
/// the independent model that finite differences run on.
struct ReferenceNetwork {
    let spec: ModelSpec
    let parameters: [String: [Double]]

    init(_ model: Model) throws {
        spec = model.spec
        var p: [String: [Double]] = [:]
        for (name, t) in model.namedParameters { p[name] = try t.toArray().map(Double.init) }
        parameters = p
    }

    /// Logits [rows, classes] of x [rows] + inputShape.
    func logits(_ x: [Double], rows: Int) -> [Double] {
        var h = x, shape = [rows] + spec.inputShape
        for (i, layer) in spec.nodes.map(Self.layer).enumerated() {
            switch layer {
            case let .linear(inF, outF):
                h = Reference.linear(x: h, weight: parameters["\(i).weight"]!, bias: parameters["\(i).bias"], rows: rows,
                                     inFeatures: inF, outFeatures: outF)
                shape = [rows, outF]
            case let .conv2d(c, k, r, s, p):
                let y = Reference.conv2d(x: h, xShape: shape, w: parameters["\(i).weight"]!, wShape: [k, c, r, r],
                                         bias: parameters["\(i).bias"], stride: (s, s), padding: (p, p))
                (h, shape) = (y.y, y.shape)
            case let .maxPool2d(k, s):
                let y = Reference.maxPool2d(x: h, shape: shape, kernel: (k, k), stride: (s, s))
                (h, shape) = (y.y, y.shape)
            case let .avgPool2d(k, s):
                let y = Reference.avgPool2d(x: h, shape: shape, kernel: (k, k), stride: (s, s))
                (h, shape) = (y.y, y.shape)
            case .relu: h = Reference.unary(0, x: h)
            case .gelu: h = Reference.unary(1, x: h)
            case .flatten: shape = [rows, shape.dropFirst().reduce(1, *)]
            case .patchEmbedding, .transformerBlock, .layerNorm, .classToken:
                preconditionFailure("the attribution reference chain has no \(layer) (use a CNN or MLP)")
            case .dropout: break
            case .softmax: h = Reference.softmax(x: h, classes: shape.last!)
            }
        }
        return h
    }

    /// A chain node as the layer that built it (the reference runs chains of CNN and MLP layers).
    static func layer(_ node: NodeSpec) -> LayerSpec {
        func int(_ key: String) -> Int {
            guard case let .int(v)? = node.attributes[key] else { preconditionFailure("node \(node) has no integer '\(key)'") }
            return v
        }
        switch node.op {
        case "linear": return .linear(inFeatures: int("in_features"), outFeatures: int("out_features"))
        case "conv2d": return .conv2d(inChannels: int("in_channels"), outChannels: int("out_channels"), kernel: int("kernel_size"),
                                      stride: int("stride"), padding: int("padding"))
        case "maxpool2d": return .maxPool2d(kernel: int("kernel_size"), stride: int("stride"))
        case "avgpool2d": return .avgPool2d(kernel: int("kernel_size"), stride: int("stride"))
        case "relu": return .relu
        case "gelu": return .gelu
        case "flatten": return .flatten
        case "dropout": return .dropout(probability: 0)
        case "softmax": return .softmax
        default: preconditionFailure("the attribution reference chain has no \(node) (use a CNN or MLP)")
        }
    }

    /// ∂ logit_c / ∂x for one input, by central differences in Double.
    func finiteDifferenceGradient(_ x: [Float], class c: Int, step: Double = 1e-5) -> [Double] {
        finiteDifferences(at: x.map(Double.init), step: step) { logits($0, rows: 1)[c] }
    }
}

/// The small seeded networks of the attribution tests.
enum AttributionNetworks {
    /// Flatten, Linear(12→16)+GELU, Linear(16→3): smooth, so quadrature errors fall fast.
    static func geluMLP(_ engine: Engine) throws -> Model {
        let spec = ModelSpec(architecture: "custom", inputShape: [1, 3, 4], classCount: 3, layers: [
            .flatten, .linear(inFeatures: 12, outFeatures: 16), .gelu, .linear(inFeatures: 16, outFeatures: 3),
        ])
        return try Model(spec: spec, seed: 11, engine: engine)
    }

    /// `ModelSpec.mlp` over [1, 3, 4] with hidden [10, 8] and 3 classes.
    static func reluMLP(_ engine: Engine) throws -> Model {
        try Model(spec: try ModelSpec.mlp(inputShape: [1, 3, 4], hidden: [10, 8], classes: 3), seed: 12, engine: engine)
    }

    /// `ModelSpec.cnn` on 10×10 images with 3 classes.
    static func cnn(_ engine: Engine) throws -> Model {
        try Model(spec: try ModelSpec.cnn(height: 10, width: 10, classes: 3), seed: 13, engine: engine)
    }
}

/// Values of one (instance, output) of an explanation, as floats for `closeness`.
func attributionFloats(_ e: Explanation, instance i: Int, output o: Int) -> [Float] {
    e.attributions(instance: i, output: o).map { Float($0) }
}
