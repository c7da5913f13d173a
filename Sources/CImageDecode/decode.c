// PNG and JPEG decoding for Prism's input files. Each decoder catches its library's longjmp in the
// function that called setjmp, so no jump ever leaves this file.
#include "prism_image_decode.h"

#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <png.h>
#include <jpeglib.h>
#include <jerror.h>

static void set_error(prism_image *out, const char *message) {
    snprintf(out->error, sizeof out->error, "%s", message);
}

/// width × height × channels, or 0 when it overflows or exceeds max_values.
static size_t checked_values(size_t width, size_t height, size_t channels, size_t max_values) {
    if (width == 0 || height == 0) return 0;
    if (width > SIZE_MAX / height) return 0;
    size_t wh = width * height;
    if (wh > SIZE_MAX / channels) return 0;
    size_t n = wh * channels;
    return n > max_values ? 0 : n;
}

void prism_image_free(prism_image *image) {
    if (image == NULL) return;
    free(image->pixels);
    image->pixels = NULL;
}

// MARK: PNG

typedef struct {
    const unsigned char *data;
    size_t size;
    size_t offset;
} png_source;

static void png_read_memory(png_structp png, png_bytep into, png_size_t length) {
    png_source *source = (png_source *)png_get_io_ptr(png);
    if (length > source->size - source->offset) {
        png_error(png, "file is truncated");
    }
    memcpy(into, source->data + source->offset, length);
    source->offset += length;
}

static void png_on_error(png_structp png, png_const_charp message) {
    prism_image *out = (prism_image *)png_get_error_ptr(png);
    set_error(out, message);
    png_longjmp(png, 1);
}

static void png_on_warning(png_structp png, png_const_charp message) {
    (void)png;
    (void)message;  // Warnings (a bad ancillary chunk, an sRGB profile mismatch) do not stop decoding.
}

int prism_decode_png(const unsigned char *data, size_t size, size_t max_values, prism_image *out) {
    memset(out, 0, sizeof *out);
    if (size < 8 || png_sig_cmp(data, 0, 8) != 0) {
        set_error(out, "not a PNG file");
        return -1;
    }
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, out, png_on_error, png_on_warning);
    if (png == NULL) {
        set_error(out, "out of memory");
        return -1;
    }
    png_infop info = png_create_info_struct(png);
    png_bytep *volatile rows = NULL;
    if (info == NULL || setjmp(png_jmpbuf(png))) {
        if (info == NULL) set_error(out, "out of memory");
        png_destroy_read_struct(&png, info ? &info : NULL, NULL);
        free(rows);
        prism_image_free(out);
        if (out->error[0] == 0) set_error(out, "cannot decode the PNG");
        return -1;
    }
    png_source source = {data, size, 0};
    png_set_read_fn(png, &source, png_read_memory);
    png_read_info(png, info);

    png_uint_32 width = png_get_image_width(png, info), height = png_get_image_height(png, info);
    int color = png_get_color_type(png, info), depth = png_get_bit_depth(png, info);
    const char *kind = color == PNG_COLOR_TYPE_GRAY ? "gray"
                     : color == PNG_COLOR_TYPE_GRAY_ALPHA ? "gray+alpha"
                     : color == PNG_COLOR_TYPE_RGB ? "RGB"
                     : color == PNG_COLOR_TYPE_RGB_ALPHA ? "RGBA" : "palette";
    snprintf(out->color_type, sizeof out->color_type, "%s", kind);

    // Palette → RGB(A); gray of 1, 2 or 4 bits → 8 bits (scaled to 0…255); a tRNS chunk → alpha.
    if (color == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(png);
    if (color == PNG_COLOR_TYPE_GRAY && depth < 8) png_set_expand_gray_1_2_4_to_8(png);
    if (png_get_valid(png, info, PNG_INFO_tRNS)) png_set_tRNS_to_alpha(png);
    if (depth == 16) png_set_swap(png);  // PNG stores 16-bit samples big-endian; hand them native (little) endian.
    if (png_get_interlace_type(png, info) != PNG_INTERLACE_NONE) png_set_interlace_handling(png);
    png_read_update_info(png, info);

    int channels = png_get_channels(png, info);
    int out_depth = png_get_bit_depth(png, info);
    size_t count = checked_values(width, height, (size_t)channels, max_values);
    if (count == 0) {
        snprintf(out->error, sizeof out->error, "%u×%u×%d samples exceed the limit of %zu", (unsigned)width,
                 (unsigned)height, channels, max_values);
        png_destroy_read_struct(&png, &info, NULL);
        return -1;
    }
    size_t sample = out_depth == 16 ? 2 : 1;
    size_t row_bytes = (size_t)width * (size_t)channels * sample;
    if (png_get_rowbytes(png, info) != row_bytes) {
        set_error(out, "unexpected PNG row size");
        png_destroy_read_struct(&png, &info, NULL);
        return -1;
    }
    out->pixels = malloc(count * sample);
    rows = malloc(sizeof(png_bytep) * height);
    if (out->pixels == NULL || rows == NULL) {
        set_error(out, "out of memory");
        free(rows);
        prism_image_free(out);
        png_destroy_read_struct(&png, &info, NULL);
        return -1;
    }
    for (png_uint_32 y = 0; y < height; y++) rows[y] = (png_bytep)out->pixels + (size_t)y * row_bytes;
    png_read_image(png, rows);
    png_read_end(png, NULL);
    free(rows);
    png_destroy_read_struct(&png, &info, NULL);
    out->width = (int)width;
    out->height = (int)height;
    out->channels = channels;
    out->bit_depth = out_depth;
    return 0;
}

// MARK: JPEG

typedef struct {
    struct jpeg_error_mgr manager;
    jmp_buf jump;
    prism_image *out;
    /// Set when the data ended before the image did (libjpeg then fills the rest with gray).
    int truncated;
} jpeg_error;

static void jpeg_on_error(j_common_ptr info) {
    jpeg_error *error = (jpeg_error *)info->err;
    char message[JMSG_LENGTH_MAX];
    (*info->err->format_message)(info, message);
    set_error(error->out, message);
    longjmp(error->jump, 1);
}

static void jpeg_on_message(j_common_ptr info, int level) {
    // Warnings about corrupt data the decoder recovers from are not printed (PIL ignores them too);
    // premature end of data is remembered and refused, as PIL refuses a truncated image.
    jpeg_error *error = (jpeg_error *)info->err;
    if (level < 0 && info->err->msg_code == JWRN_JPEG_EOF) error->truncated = 1;
}

int prism_decode_jpeg(const unsigned char *data, size_t size, size_t max_values, prism_image *out) {
    memset(out, 0, sizeof *out);
    if (size < 3 || data[0] != 0xFF || data[1] != 0xD8 || data[2] != 0xFF) {
        set_error(out, "not a JPEG file");
        return -1;
    }
    struct jpeg_decompress_struct info;
    jpeg_error error;
    info.err = jpeg_std_error(&error.manager);
    error.manager.error_exit = jpeg_on_error;
    error.manager.emit_message = jpeg_on_message;
    error.out = out;
    error.truncated = 0;
    if (setjmp(error.jump)) {
        jpeg_destroy_decompress(&info);
        prism_image_free(out);
        return -1;
    }
    jpeg_create_decompress(&info);
    jpeg_mem_src(&info, data, (unsigned long)size);
    jpeg_read_header(&info, TRUE);
    switch (info.jpeg_color_space) {
    case JCS_GRAYSCALE:
        info.out_color_space = JCS_GRAYSCALE;
        snprintf(out->color_type, sizeof out->color_type, "gray");
        break;
    case JCS_YCbCr:
    case JCS_RGB:
        info.out_color_space = JCS_RGB;
        snprintf(out->color_type, sizeof out->color_type, "RGB");
        break;
    default:
        set_error(out, "CMYK and YCCK JPEG images are not supported (convert to RGB)");
        jpeg_destroy_decompress(&info);
        return -1;
    }
    jpeg_calc_output_dimensions(&info);
    size_t count = checked_values(info.output_width, info.output_height, (size_t)info.output_components, max_values);
    if (count == 0) {
        snprintf(out->error, sizeof out->error, "%u×%u×%d samples exceed the limit of %zu",
                 (unsigned)info.output_width, (unsigned)info.output_height, info.output_components, max_values);
        jpeg_destroy_decompress(&info);
        return -1;
    }
    out->pixels = malloc(count);
    if (out->pixels == NULL) {
        set_error(out, "out of memory");
        jpeg_destroy_decompress(&info);
        return -1;
    }
    jpeg_start_decompress(&info);
    size_t row_bytes = (size_t)info.output_width * (size_t)info.output_components;
    while (info.output_scanline < info.output_height) {
        JSAMPROW row = (JSAMPROW)out->pixels + (size_t)info.output_scanline * row_bytes;
        jpeg_read_scanlines(&info, &row, 1);
    }
    jpeg_finish_decompress(&info);
    if (error.truncated) {
        set_error(out, "file is truncated (premature end of JPEG data)");
        jpeg_destroy_decompress(&info);
        prism_image_free(out);
        return -1;
    }
    out->width = (int)info.output_width;
    out->height = (int)info.output_height;
    out->channels = info.output_components;
    out->bit_depth = 8;
    jpeg_destroy_decompress(&info);
    return 0;
}
