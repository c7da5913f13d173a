// The file parsers live in PrismFormats (no OpenCL, so that the fuzz targets can link them);
// Prism's users see them as part of Prism.
@_exported import PrismFormats
