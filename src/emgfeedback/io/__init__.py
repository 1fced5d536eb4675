"""Files: EDF+/BDF+ recordings with their JSON sidecar, importers and exporters."""
