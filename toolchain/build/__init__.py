"""From a gadget directory to an image: the clang driver (:mod:`.compile`) and the build
steps (:mod:`.driver`)."""
