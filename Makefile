# Quick start:  make demo   (run the main job)   ·   make test   (run the tests)
# Both install the Debian packages they need first (.ci/install-deps).

.PHONY: deps demo test build release static

deps:
	@.ci/install-deps

# The main job on the embedded default: train the reference CNN on Fashion-MNIST (5 epochs, Adam
# 1e-3, batch 64), evaluate it, and explain two test images with Kernel SHAP over 49 superpixels.
# Results land in out/.
demo: deps
	swift build -c release --product prism
	mkdir -p out
	.build/release/prism devices
	.build/release/prism train --arch cnn --epochs 5 --batch 64 --lr 1e-3 --optimizer adam --seed 0 --out out/cnn.safetensors
	.build/release/prism eval --model out/cnn.safetensors
	.build/release/prism predict --model out/cnn.safetensors --index 0
	.build/release/prism explain --model out/cnn.safetensors --index 0,1 --method kernel-shap --background 50 --out out/report

test: deps
	swift test
	.ci/oclgrind-kernels

build: deps
	swift build

release: deps
	swift build -c release

static: deps
	swift build -c release --static-swift-stdlib
