import PrismCL

/// The PyTorch windows of adaptive pooling of `size` cells into `out`: window i covers
/// [⌊i·size/out⌋, ⌈(i + 1)·size/out⌉).
func adaptiveWindows(size: Int, out: Int) -> [Range<Int>] {
    (0..<out).map { i in (i * size / out)..<(((i + 1) * size + out - 1) / out) }
}

/// Adaptive 2-D average pooling (PyTorch's `AdaptiveAvgPool2d`), recording its backward: output
/// cell (i, j) is the mean of rows [⌊i·H/oh⌋, ⌈(i + 1)·H/oh⌉) and columns [⌊j·W/ow⌋, ⌈(j + 1)·W/ow⌉)
/// (windows may overlap when the sizes do not divide).
///
/// When oh divides H and ow divides W this is `avgPool2d` with kernel = stride = (H/oh, W/ow).
/// Otherwise, being linear in x, it is [N·C, H·W] times a host-built pooling matrix [H·W, oh·ow]
/// (the gradient is the product with its transpose, through `matmul`'s backward).
/// - Parameters:
///   - x: [N, C, H, W].
///   - outputSize: (oh, ow), each ≥ 1.
/// - Throws: `TensorError` naming the shape when x is not rank 4 with positive sizes, or an output
///   size is below 1 or too large.
/// - Returns: [N, C, oh, ow].
public func adaptiveAvgPool2d(_ x: Tensor, outputSize: (Int, Int)) throws -> Tensor {
    let (oh, ow) = outputSize
    guard x.rank == 4, x.shape.allSatisfy({ $0 > 0 }) else {
        throw TensorError.shape("adaptiveAvgPool2d", "input must have rank 4 [N, C, H, W] with positive sizes", x.shape)
    }
    guard oh >= 1, ow >= 1 else {
        throw TensorError.shape("adaptiveAvgPool2d", "output size \(oh)×\(ow) must be at least 1×1", x.shape)
    }
    let (n, c, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
    let (area, outArea) = (h.multipliedReportingOverflow(by: w), oh.multipliedReportingOverflow(by: ow))
    let cells = area.partialValue.multipliedReportingOverflow(by: outArea.partialValue)
    guard !area.overflow, !outArea.overflow, !cells.overflow, cells.partialValue < Int(Int32.max),
          (n * c).multipliedReportingOverflow(by: outArea.partialValue).partialValue < Int(Int32.max) else {
        throw TensorError.shape("adaptiveAvgPool2d", "pooling matrix for output \(oh)×\(ow) is too large", x.shape)
    }
    // Sizes that divide give PyTorch's windows as a plain average pooling with kernel = stride.
    if h % oh == 0, w % ow == 0 {
        return try avgPool2d(x, kernel: (h / oh, w / ow))
    }
    let rows = adaptiveWindows(size: h, out: oh), columns = adaptiveWindows(size: w, out: ow)
    var pooling = [Float](repeating: 0, count: h * w * oh * ow)
    for (i, rowRange) in rows.enumerated() {
        for (j, columnRange) in columns.enumerated() {
            let share = 1 / Float(rowRange.count * columnRange.count)
            for r in rowRange {
                for s in columnRange { pooling[(r * w + s) * (oh * ow) + i * ow + j] = share }
            }
        }
    }
    let matrix = try Tensor(pooling, shape: [h * w, oh * ow], engine: x.engine)
    return try matmul(try x.reshaped([n * c, h * w]), matrix).reshaped([n, c, oh, ow])
}
