"""The FAQ: answers support staff edit in YAML, loaded, validated and rendered here."""
