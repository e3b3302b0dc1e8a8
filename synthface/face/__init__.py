"""The face and its labels: the 68-point scheme, geometry, pose, the label record, dlib's
labels (annotate), the 3D turn and dataset-time augmentation."""
