"""Functions that build matplotlib figures; shared by the dock widgets and the command line."""
