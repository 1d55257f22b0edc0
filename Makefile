# Two entry points for users, both doing all set-up on a fresh Debian 12 machine (as root):
#   make image   installs what is missing, fetches the pinned inputs, builds out/minimal/disk.raw
#   make test    installs what is missing, runs every test (QEMU boots included)
SHELL := /bin/bash
SPEC ?= images/minimal.yaml
OUT ?= out/minimal
POOL ?= pool
# /init is a static glibc binary: no extra Rust target to install (HOST.md).
INIT_TARGET := x86_64-unknown-linux-gnu
INIT := target/$(INIT_TARGET)/release/init
IMAGE_BUILDER := target/release/image-builder
# The initramfs /init and the update engine are part of images: static, without machine-specific paths.
INIT_RUSTFLAGS := -C target-feature=+crt-static --remap-path-prefix=$(CURDIR)=/src --remap-path-prefix=$(HOME)/.cargo=/cargo -C strip=symbols

.PHONY: image test setup tools pool pool-all lint bench clean fuzz

image: tools pool
	$(IMAGE_BUILDER) build $(SPEC) --out $(OUT) --pool $(POOL)

# cargo-nextest (installed when missing), two tests at a time across all binaries
# (.config/nextest.toml), then the fuzz targets a few seconds each on their corpora
# (scripts/fuzz.sh), then a table of each test binary's time, also when tests failed.
test: tools pool-all
	bash scripts/test.sh

# The fuzz targets for long (fuzz/README.md): FUZZ_TIME seconds each, or only TARGET
# (make fuzz TARGET=spec FUZZ_TIME=3600). New inputs stay in fuzz/work/; `scripts/fuzz.sh merge`
# adds the ones that reach new code to the checked-in corpora.
FUZZ_TIME ?= 600
TARGET ?=
fuzz: setup
	FUZZ_TIME=$(FUZZ_TIME) bash scripts/fuzz.sh long $(TARGET)

setup:
	bash scripts/setup-host.sh

tools: setup
	# /init alone: built with the others, cargo's feature unification would make its bytes (and
	# every image's initramfs) depend on the other programs' dependencies.
	RUSTFLAGS="$(INIT_RUSTFLAGS)" cargo build -q -p init --bin init --release --target $(INIT_TARGET)
	RUSTFLAGS="$(INIT_RUSTFLAGS)" cargo build -q -p cloudinit --bin coreos-cloudinit -p first-boot --bin first-boot -p update-engine --bin update-engine --release --target $(INIT_TARGET)
	cargo build -q --release --workspace --bins

pool: tools
	$(IMAGE_BUILDER) fetch $(SPEC) --pool $(POOL)

# The tests build every shipped image.
pool-all: tools
	for spec in images/*.yaml; do $(IMAGE_BUILDER) fetch $$spec --pool $(POOL) || exit 1; done

lint:
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings

# Both images, each from exactly its lock's packages (the container host's pool too).
bench: tools pool-all
	bash bench/build.sh

clean:
	rm -rf out target fuzz/target

.PHONY: bench-apply
bench-apply: tools
	bash bench/apply.sh

# The builder's .deb extraction against dpkg-deb -x on the container host's packages.
.PHONY: bench-extract
bench-extract: pool-all
	bash bench/extract.sh

.PHONY: bench-convert
bench-convert: image
	bash bench/convert.sh

# Issue 6: the container host's USR size and boot time to SSH-ready (TCG).
bench-container-host: tools pool-all
	$(IMAGE_BUILDER) build images/container-host.yaml --out out/container-host --pool $(POOL)
	$(IMAGE_BUILDER) build $(SPEC) --out $(OUT) --pool $(POOL)
	bash bench/container-host.sh
.PHONY: bench-container-host

# Boot time per hardware model (the tests' matrix) next to the virtio/UEFI baseline.
bench-boot: image
	bash bench/boot-matrix.sh
.PHONY: bench-boot
