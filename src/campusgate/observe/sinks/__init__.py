"""Where access records go: one module per kind of sink (``base.Sink``)."""
