"""A synthetic forgery stream: one batch per generator family, reals cropped from bundled images.

`ifd.synth.stream.write_stream` writes it; `ifd.synth.transfer` measures how far a detector trained on
one family carries to the others. This package file stays import-light (it is imported by the config).
"""
