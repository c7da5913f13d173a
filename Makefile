# Quick start:  make demo   (run the main job)   ·   make test   (run the tests)
# Both install the Debian packages they need first (.ci/install-deps).

.PHONY: deps demo test build release static

deps:
	@.ci/install-deps

demo: deps
	swift run -c release prism devices

test: deps
	swift test
	.ci/oclgrind-kernels

build: deps
	swift build

release: deps
	swift build -c release

static: deps
	swift build -c release --static-swift-stdlib
