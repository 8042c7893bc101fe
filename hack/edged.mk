# Edged: the project's own containerd (Debian's containerd, runc and CNI plugins) and the test
# images its tests and 'make dev' run. Included by the Makefile; extends TEST_PACKAGES and test.
# See docs/edged.md.

# The test images (edgetwin.dev/pause:1, edgetwin.dev/workload:1) as OCI tarballs in the cache.
TEST_IMAGES_DIR ?= $(CACHE_DIR)/test-images

TEST_PACKAGES += containerd runc containernetworking-plugins iproute2
test: test-images

##@ Edged

.PHONY: test-images
test-images: ## Build the pause and workload test images into $(TEST_IMAGES_DIR) (OCI tarballs, no Docker).
	@hack/build-test-images.sh "$(TEST_IMAGES_DIR)" >/dev/null
	@echo "test images in $(TEST_IMAGES_DIR): pause.tar (edgetwin.dev/pause:1), workload.tar (edgetwin.dev/workload:1)"

# Edged's parser of $(VAR) references in command, args and env values.
FUZZ_TARGETS += ./edge/edged:FuzzExpand
