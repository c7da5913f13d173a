# Quick start:  make demo   (run the main job)   ·   make test   (run the tests)
# Both install the Debian packages they need first (.ci/install-deps).

.PHONY: deps demo pipeline test fuzz build release static

deps:
	@.ci/install-deps

# The main job on the embedded default: train the reference CNN on Fashion-MNIST for one epoch (or
# reuse the model cached in ~/.cache/prism), explain 8 test images with Kernel SHAP, Integrated
# Gradients and Grad-CAM, and write the report out/demo/index.html.
demo: deps
	swift build -c release --product prism
	.build/release/prism demo --out out/demo

# The same steps one command at a time, with a longer training run: train for 5 epochs, evaluate,
# predict one image, explain two with Kernel SHAP. Results land in out/.
pipeline: deps
	swift build -c release --product prism
	mkdir -p out
	.build/release/prism devices
	.build/release/prism train --arch cnn --epochs 5 --batch 64 --lr 1e-3 --optimizer adam --seed 0 --out out/cnn.safetensors
	.build/release/prism eval --model out/cnn.safetensors
	.build/release/prism predict --model out/cnn.safetensors --index 0
	.build/release/prism explain --model out/cnn.safetensors --index 0,1 --method kernel-shap,ig,gradcam --background 50 --metrics --out out/report

test: deps
	swift test
	.ci/oclgrind-kernels

# Each parser's fuzz target (Fuzz/targets) for 60 s with libFuzzer and AddressSanitizer, after
# replaying its seed corpus (Fuzz/corpus); CI runs the short deterministic form (Fuzz/run).
fuzz: deps
	Fuzz/run --seconds 60

build: deps
	swift build

release: deps
	swift build -c release

static: deps
	swift build -c release --static-swift-stdlib
