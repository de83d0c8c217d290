"""Fine-tuning the pretrained trunks: classification (:mod:`.cls`) and segmentation
(:mod:`.seg`, U-Net in :mod:`.unet`) on the published training subsets, with what
they share (:mod:`.common`)."""
