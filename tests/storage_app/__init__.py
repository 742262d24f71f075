"""A small app for FileField/ImageField round trips through ImageKitStorage."""
