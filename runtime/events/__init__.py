"""From raw records to printed events: fields, decoding, formatters, filter, enrichment, output."""
