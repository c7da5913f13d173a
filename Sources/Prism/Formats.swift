// The file parsers live in PrismFormats, the image decoder in PrismImages and the model
// descriptions in PrismGraph (no OpenCL, so that the fuzz targets can link them); Prism's users
// see them as part of Prism.
@_exported import PrismFormats
@_exported import PrismGraph
@_exported import PrismImages
