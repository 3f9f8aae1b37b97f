"""Personal data in logged text: detection, anonymizing operators and a labelled test corpus."""
