// PNG (libpng) and JPEG (libjpeg-turbo) decoding into interleaved pixels, for Prism's input files.
// Errors come back as a message in the result: libpng and libjpeg report errors by longjmp, which
// is caught inside these C functions and never crosses into the caller.
#ifndef PRISM_IMAGE_DECODE_H
#define PRISM_IMAGE_DECODE_H

#include <stddef.h>

typedef struct {
    int width;
    int height;
    /// 1 gray, 2 gray + alpha, 3 RGB, 4 RGBA (palette images come expanded to RGB or RGBA).
    int channels;
    /// 8 (pixels are unsigned char) or 16 (pixels are native-endian unsigned short).
    int bit_depth;
    /// What the file held, for messages: "gray", "gray+alpha", "RGB", "RGBA", "palette", "CMYK".
    char color_type[16];
    /// Row-major height × width × channels samples, malloc'ed; NULL on failure. Free with
    /// prism_image_free.
    void *pixels;
    /// A one-line reason when decoding failed (empty on success).
    char error[256];
} prism_image;

/// Decodes a PNG held in memory. Refuses, before allocating pixels, an image of more than
/// `max_values` samples (width × height × channels). Returns 0 on success, -1 with `error` set.
int prism_decode_png(const unsigned char *data, size_t size, size_t max_values, prism_image *out);

/// Decodes a baseline or progressive JPEG held in memory (gray stays gray, YCbCr becomes RGB; CMYK
/// is refused), with the library's default accurate integer DCT and smooth chroma upsampling.
/// Same limit and return convention as prism_decode_png.
int prism_decode_jpeg(const unsigned char *data, size_t size, size_t max_values, prism_image *out);

/// Frees the pixels of a decoded image (safe on a failed or already freed one).
void prism_image_free(prism_image *image);

#endif
