"""Pure conversion between wire dialects. No I/O, no settings, no logging: data in, data out."""
