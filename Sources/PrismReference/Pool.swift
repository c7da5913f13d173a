extension Reference {
    /// 2-D max pooling; padding counts as −∞; ties keep the first pixel in row-major window order.
    ///
    /// x: [N, C, H, W] → y: [N, C, P, Q] and argmax: [N, C, P, Q] (offset ih·W + iw inside the plane).
    public static func maxPool2d(x: [Double], shape: [Int], kernel: (Int, Int), stride: (Int, Int),
                                 padding: (Int, Int) = (0, 0)) -> (y: [Double], shape: [Int], argmax: [Int]) {
        let (planes, h, w) = (shape[0] * shape[1], shape[2], shape[3])
        let p = slidingOutputSize(h, kernel: kernel.0, stride: stride.0, padding: padding.0)
        let q = slidingOutputSize(w, kernel: kernel.1, stride: stride.1, padding: padding.1)
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

    /// 2-D average pooling with count_include_pad = true (every window divides by kh·kw).
    ///
    /// x: [N, C, H, W] → y: [N, C, P, Q].
    public static func avgPool2d(x: [Double], shape: [Int], kernel: (Int, Int), stride: (Int, Int),
                                 padding: (Int, Int) = (0, 0)) -> (y: [Double], shape: [Int]) {
        let (planes, h, w) = (shape[0] * shape[1], shape[2], shape[3])
        let p = slidingOutputSize(h, kernel: kernel.0, stride: stride.0, padding: padding.0)
        let q = slidingOutputSize(w, kernel: kernel.1, stride: stride.1, padding: padding.1)
        let area = Double(kernel.0 * kernel.1)
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
                    y[(plane * p + pi) * q + qi] = sum / area
                }
            }
        }
        return (y, [shape[0], shape[1], p, q])
    }

    /// Backward of `avgPool2d`.
    ///
    /// dy: [N, C, P, Q]; inputShape [N, C, H, W] → dx: [N, C, H, W].
    public static func avgPool2dBackward(dy: [Double], inputShape: [Int], kernel: (Int, Int), stride: (Int, Int),
                                         padding: (Int, Int) = (0, 0)) -> [Double] {
        let (planes, h, w) = (inputShape[0] * inputShape[1], inputShape[2], inputShape[3])
        let p = slidingOutputSize(h, kernel: kernel.0, stride: stride.0, padding: padding.0)
        let q = slidingOutputSize(w, kernel: kernel.1, stride: stride.1, padding: padding.1)
        let area = Double(kernel.0 * kernel.1)
        var dx = [Double](repeating: 0, count: planes * h * w)
        for plane in 0..<planes {
            for pi in 0..<p {
                for qi in 0..<q {
                    let g = dy[(plane * p + pi) * q + qi] / area
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
}
