from __future__ import annotations

from django import forms
from django.conf import settings


class UploadForm(forms.Form):
    title = forms.CharField(max_length=200, required=False)
    # A FileField, not an ImageField: the optimiser validates the bytes itself (safely, from
    # the header first), so the upload is read once and decoded once.
    photo = forms.FileField(widget=forms.ClearableFileInput(attrs={"accept": "image/*"}))

    def clean_photo(self) -> object:
        photo = self.cleaned_data["photo"]
        if photo.size > settings.GALLERY_MAX_UPLOAD_BYTES:
            raise forms.ValidationError(
                f"The photo is {photo.size:,} bytes; the limit is "
                f"{settings.GALLERY_MAX_UPLOAD_BYTES:,}."
            )
        return photo
