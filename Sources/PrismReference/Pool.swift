extension Reference {
    /// 2-D max pooling; padding counts as −∞; ties keep the first pixel in row-major window order.
    ///
    /// x: [N, C, H, W] → y: [N, C, P, Q] and argmax: [N, C, P, Q] (offset ih·W + iw inside the plane);
    /// P and Q as `poolOutputSize`.
    public static func maxPool2d(x: [Double], shape: [Int], kernel: (Int, Int), stride: (Int, Int),
                                 padding: (Int, Int) = (0, 0), ceilMode: Bool = false) -> (y: [Double], shape: [Int], argmax: [Int]) {
        let (planes, h, w) = (shape[0] * shape[1], shape[2], shape[3])
        let p = poolOutputSize(h, kernel: kernel.0, stride: stride.0, padding: padding.0, ceilMode: ceilMode)
        let q = poolOutputSize(w, kernel: kernel.1, stride: stride.1, padding: padding.1, ceilMode: ceilMode)
        var y = [Double](repeating: -.infinity, count: planes * p * q)
        var argmax = [Int](repeating: -1, count: y.count)
        for plane in 0..<planes {
            for pi in 0..<p {
                for qi in 0..<q {
                    let o = (plane * p + pi) * q + qi
                    for r in 0..<kernel.0 {
                        let ih = pi * stride.0 - padding.0 + r
                        guard ih >= 0, ih < h else { continue }
                        for s in 0..<kernel.1 {
                            let iw = qi * stride.1 - padding.1 + s
                            guard iw >= 0, iw < w else { continue }
                            let v = x[(plane * h + ih) * w + iw]
                            if argmax[o] < 0 || v > y[o] {
                                y[o] = v
                                argmax[o] = ih * w + iw
                            }
                        }
                    }
                }
            }
        }
        return (y, [shape[0], shape[1], p, q], argmax)
    }

    /// Backward of `maxPool2d`: each output's gradient goes to its argmax pixel.
    ///
    /// dy, argmax: [N, C, P, Q]; inputShape [N, C, H, W] → dx: [N, C, H, W].
    public static func maxPool2dBackward(dy: [Double], argmax: [Int], inputShape: [Int]) -> [Double] {
        let plane = inputShape[2] * inputShape[3]
        let planes = inputShape[0] * inputShape[1]
        let outPlane = dy.count / max(planes, 1)
        var dx = [Double](repeating: 0, count: planes * plane)
        for o in dy.indices where argmax[o] >= 0 {
            dx[(o / outPlane) * plane + argmax[o]] += dy[o]
        }
        return dx
    }

    /// The output size of a pooling along one axis, as PyTorch: ⌊(size + 2·pad − k) / stride⌋ + 1, or
    /// with `ceilMode` ⌈…⌉ + 1 less one when the last window would start past the input and left padding.
    public static func poolOutputSize(_ size: Int, kernel: Int, stride: Int, padding: Int, ceilMode: Bool) -> Int {
        let span = size + 2 * padding - kernel
        guard ceilMode else { return span < 0 ? 0 : span / stride + 1 }
        let numerator = span + stride - 1
        var out = (numerator < 0 ? -((-numerator + stride - 1) / stride) : numerator / stride) + 1
        if out > 0, (out - 1) * stride >= size + padding { out -= 1 }
        return Swift.max(out, 0)
    }

    /// The divisor of average-pooling window (pi, qi), as PyTorch: the window clipped to the padded
    /// input, or with `countIncludePad: false` clipped to the input.
    static func avgPoolDivisor(_ pi: Int, _ qi: Int, h: Int, w: Int, kernel: (Int, Int), stride: (Int, Int),
                               padding: (Int, Int), countIncludePad: Bool) -> Double {
        let h0 = pi * stride.0 - padding.0, w0 = qi * stride.1 - padding.1
        let h1 = Swift.min(h0 + kernel.0, h + padding.0), w1 = Swift.min(w0 + kernel.1, w + padding.1)
        if countIncludePad { return Double((h1 - h0) * (w1 - w0)) }
        return Double((Swift.min(h1, h) - Swift.max(h0, 0)) * (Swift.min(w1, w) - Swift.max(w0, 0)))
    }

    /// 2-D average pooling (PyTorch's `AvgPool2d`): window sums over the input pixels, divided as
    /// `avgPoolDivisor` says (kh·kw for every window unless `ceilMode` clips the last ones).
    ///
    /// x: [N, C, H, W] → y: [N, C, P, Q], P and Q as `poolOutputSize`.
    public static func avgPool2d(x: [Double], shape: [Int], kernel: (Int, Int), stride: (Int, Int),
                                 padding: (Int, Int) = (0, 0), ceilMode: Bool = false,
                                 countIncludePad: Bool = true) -> (y: [Double], shape: [Int]) {
        let (planes, h, w) = (shape[0] * shape[1], shape[2], shape[3])
        let p = poolOutputSize(h, kernel: kernel.0, stride: stride.0, padding: padding.0, ceilMode: ceilMode)
        let q = poolOutputSize(w, kernel: kernel.1, stride: stride.1, padding: padding.1, ceilMode: ceilMode)
        var y = [Double](repeating: 0, count: planes * p * q)
        for plane in 0..<planes {
            for pi in 0..<p {
                for qi in 0..<q {
                    var sum = 0.0
                    for r in 0..<kernel.0 {
                        let ih = pi * stride.0 - padding.0 + r
                        guard ih >= 0, ih < h else { continue }
                        for s in 0..<kernel.1 {
                            let iw = qi * stride.1 - padding.1 + s
                            if iw >= 0, iw < w { sum += x[(plane * h + ih) * w + iw] }
                        }
                    }
                    let divisor = avgPoolDivisor(pi, qi, h: h, w: w, kernel: kernel, stride: stride, padding: padding,
                                                 countIncludePad: countIncludePad)
                    y[(plane * p + pi) * q + qi] = sum / divisor
                }
            }
        }
        return (y, [shape[0], shape[1], p, q])
    }

    /// Backward of `avgPool2d`.
    ///
    /// dy: [N, C, P, Q]; inputShape [N, C, H, W] → dx: [N, C, H, W].
    public static func avgPool2dBackward(dy: [Double], inputShape: [Int], kernel: (Int, Int), stride: (Int, Int),
                                         padding: (Int, Int) = (0, 0), ceilMode: Bool = false,
                                         countIncludePad: Bool = true) -> [Double] {
        let (planes, h, w) = (inputShape[0] * inputShape[1], inputShape[2], inputShape[3])
        let p = poolOutputSize(h, kernel: kernel.0, stride: stride.0, padding: padding.0, ceilMode: ceilMode)
        let q = poolOutputSize(w, kernel: kernel.1, stride: stride.1, padding: padding.1, ceilMode: ceilMode)
        var dx = [Double](repeating: 0, count: planes * h * w)
        for plane in 0..<planes {
            for pi in 0..<p {
                for qi in 0..<q {
                    let divisor = avgPoolDivisor(pi, qi, h: h, w: w, kernel: kernel, stride: stride, padding: padding,
                                                 countIncludePad: countIncludePad)
                    let g = dy[(plane * p + pi) * q + qi] / divisor
                    for r in 0..<kernel.0 {
                        let ih = pi * stride.0 - padding.0 + r
                        guard ih >= 0, ih < h else { continue }
                        for s in 0..<kernel.1 {
                            let iw = qi * stride.1 - padding.1 + s
                            if iw >= 0, iw < w { dx[(plane * h + ih) * w + iw] += g }
                        }
                    }
                }
            }
        }
        return dx
    }

    /// Global average pooling: the mean of each plane.
    ///
    /// x: [N, C, H, W] → y: [N, C].
    public static func globalAvgPool2d(x: [Double], shape: [Int]) -> [Double] {
        let area = shape[2] * shape[3]
        return (0..<(shape[0] * shape[1])).map { plane in
            x[(plane * area)..<((plane + 1) * area)].reduce(0, +) / Double(area)
        }
    }

    /// Backward of `globalAvgPool2d`.
    ///
    /// dy: [N, C]; inputShape [N, C, H, W] → dx: [N, C, H, W].
    public static func globalAvgPool2dBackward(dy: [Double], inputShape: [Int]) -> [Double] {
        let area = inputShape[2] * inputShape[3]
        return (0..<(dy.count * area)).map { dy[$0 / area] / Double(area) }
    }

    /// Adaptive 2-D average pooling (PyTorch's `AdaptiveAvgPool2d`): output (i, j) averages rows
    /// [⌊i·H/oh⌋, ⌈(i + 1)·H/oh⌉) and columns [⌊j·W/ow⌋, ⌈(j + 1)·W/ow⌉).
    ///
    /// x: [N, C, H, W] → y: [N, C, oh, ow].
    public static func adaptiveAvgPool2d(x: [Double], shape: [Int], outputSize: (Int, Int)) -> (y: [Double], shape: [Int]) {
        let (planes, h, w) = (shape[0] * shape[1], shape[2], shape[3])
        let (oh, ow) = outputSize
        var y = [Double](repeating: 0, count: planes * oh * ow)
        for plane in 0..<planes {
            for i in 0..<oh {
                let r0 = i * h / oh, r1 = ((i + 1) * h + oh - 1) / oh
                for j in 0..<ow {
                    let s0 = j * w / ow, s1 = ((j + 1) * w + ow - 1) / ow
                    var sum = 0.0
                    for r in r0..<r1 {
                        for s in s0..<s1 { sum += x[(plane * h + r) * w + s] }
                    }
                    y[(plane * oh + i) * ow + j] = sum / Double((r1 - r0) * (s1 - s0))
                }
            }
        }
        return (y, [shape[0], shape[1], oh, ow])
    }
}
