"""Training of the RetinaFace detector: augmentation, dataset and targets, prior matching, loss and trainer."""
