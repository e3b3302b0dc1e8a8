"""Downstream models trained on a dataset: dlib landmark models and HOG face detectors."""
