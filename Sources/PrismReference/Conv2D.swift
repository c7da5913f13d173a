extension Reference {
    /// Output height and width of a convolution or pooling window sweep: (size + 2·pad − dil·(k − 1) − 1) / stride + 1.
    public static func slidingOutputSize(_ size: Int, kernel: Int, stride: Int, padding: Int, dilation: Int = 1) -> Int {
        let span = size + 2 * padding - dilation * (kernel - 1) - 1
        return span < 0 ? 0 : span / stride + 1
    }

    /// 2-D convolution (cross-correlation, as PyTorch's Conv2d).
    ///
    /// x: [N, C, H, W]; w: [K, C / G, R, S] for G = groups; bias: [K] or nil → y: [N, K, P, Q],
    /// y[n,k,p,q] = bias[k] + Σ_{c,r,s} w[k,c,r,s] · x[n, g·C/G + c, p·sh − ph + r·dh, q·sw − pw + s·dw]
    /// (zero outside) with g = k / (K / G), the group of output channel k.
    public static func conv2d(x: [Double], xShape: [Int], w: [Double], wShape: [Int], bias: [Double]?,
                              stride: (Int, Int) = (1, 1), padding: (Int, Int) = (0, 0),
                              dilation: (Int, Int) = (1, 1), groups: Int = 1) -> (y: [Double], shape: [Int]) {
        let (n, channels, h, wd) = (xShape[0], xShape[1], xShape[2], xShape[3])
        let c = wShape[1], perGroup = wShape[0] / groups
        let (k, r, s) = (wShape[0], wShape[2], wShape[3])
        let p = slidingOutputSize(h, kernel: r, stride: stride.0, padding: padding.0, dilation: dilation.0)
        let q = slidingOutputSize(wd, kernel: s, stride: stride.1, padding: padding.1, dilation: dilation.1)
        var y = [Double](repeating: 0, count: n * k * p * q)
        for ni in 0..<n {
            for ki in 0..<k {
                for pi in 0..<p {
                    for qi in 0..<q {
                        var sum = bias?[ki] ?? 0
                        for ci in 0..<c {
                            for ri in 0..<r {
                                let ih = pi * stride.0 - padding.0 + ri * dilation.0
                                guard ih >= 0, ih < h else { continue }
                                for si in 0..<s {
                                    let iw = qi * stride.1 - padding.1 + si * dilation.1
                                    guard iw >= 0, iw < wd else { continue }
                                    let xc = (ki / perGroup) * c + ci
                                    sum += w[((ki * c + ci) * r + ri) * s + si] * x[((ni * channels + xc) * h + ih) * wd + iw]
                                }
                            }
                        }
                        y[((ni * k + ki) * p + pi) * q + qi] = sum
                    }
                }
            }
        }
        return (y, [n, k, p, q])
    }

    /// Backward of `conv2d`.
    ///
    /// dy: [N, K, P, Q]; x: [N, C, H, W]; w: [K, C / G, R, S] → dx: [N, C, H, W], dw: [K, C / G, R, S], db: [K].
    public static func conv2dBackward(dy: [Double], x: [Double], xShape: [Int], w: [Double], wShape: [Int],
                                      stride: (Int, Int) = (1, 1), padding: (Int, Int) = (0, 0),
                                      dilation: (Int, Int) = (1, 1), groups: Int = 1) -> (dx: [Double], dw: [Double], db: [Double]) {
        let (n, channels, h, wd) = (xShape[0], xShape[1], xShape[2], xShape[3])
        let c = wShape[1], perGroup = wShape[0] / groups
        let (k, r, s) = (wShape[0], wShape[2], wShape[3])
        let p = slidingOutputSize(h, kernel: r, stride: stride.0, padding: padding.0, dilation: dilation.0)
        let q = slidingOutputSize(wd, kernel: s, stride: stride.1, padding: padding.1, dilation: dilation.1)
        var dx = [Double](repeating: 0, count: x.count)
        var dw = [Double](repeating: 0, count: w.count)
        var db = [Double](repeating: 0, count: k)
        for ni in 0..<n {
            for ki in 0..<k {
                for pi in 0..<p {
                    for qi in 0..<q {
                        let g = dy[((ni * k + ki) * p + pi) * q + qi]
                        db[ki] += g
                        for ci in 0..<c {
                            for ri in 0..<r {
                                let ih = pi * stride.0 - padding.0 + ri * dilation.0
                                guard ih >= 0, ih < h else { continue }
                                for si in 0..<s {
                                    let iw = qi * stride.1 - padding.1 + si * dilation.1
                                    guard iw >= 0, iw < wd else { continue }
                                    let xi = ((ni * channels + (ki / perGroup) * c + ci) * h + ih) * wd + iw
                                    let wi = ((ki * c + ci) * r + ri) * s + si
                                    dx[xi] += g * w[wi]
                                    dw[wi] += g * x[xi]
                                }
                            }
                        }
                    }
                }
            }
        }
        return (dx, dw, db)
    }
}
