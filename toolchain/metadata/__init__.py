"""gadget.yaml and build.yaml: load with positions, validate against schema and object, generate."""
