"""JSON Schemas shipped with gadgetsmith."""
