"""OCI and gadget media types (identical to Inspektor Gadget's)."""

INDEX = "application/vnd.oci.image.index.v1+json"
MANIFEST = "application/vnd.oci.image.manifest.v1+json"
ARTIFACT_TYPE = "application/vnd.gadget.v1+binary"
CONFIG = "application/vnd.gadget.config.v1+yaml"
EMPTY = "application/vnd.oci.empty.v1+json"
EBPF = "application/vnd.gadget.ebpf.program.v1+binary"
WASM = "application/vnd.gadget.wasm.program.v1+binary"
BTFGEN = "application/vnd.gadget.btfgen.v1+binary"

EMPTY_DIGEST = "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
EMPTY_DATA_B64 = "e30="

LAYER_ORDER = (EBPF, WASM, BTFGEN)
LAYER_NAMES = {EBPF: "ebpf", WASM: "wasm", BTFGEN: "btfgen"}

REF_NAME = "org.opencontainers.image.ref.name"
CREATED = "org.opencontainers.image.created"
TITLE = "org.opencontainers.image.title"
DESCRIPTION = "org.opencontainers.image.description"
URL = "org.opencontainers.image.url"
DOCUMENTATION = "org.opencontainers.image.documentation"
SOURCE = "org.opencontainers.image.source"
IG_BUILDER_VERSION = "io.inspektor-gadget.builder.version"
BUILDER_VERSION = "io.gadgetsmith.builder.version"
