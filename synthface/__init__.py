"""synthface: synthetic face datasets from a DCGAN, labelled with dlib.

Nothing heavy is imported here: `synthface --help` must not pay for torch or dlib.
"""

__version__ = "0.1.0"
