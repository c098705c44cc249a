"""OCI images on disk: the local store, writing an image graph, reading views of it, tar archives."""
