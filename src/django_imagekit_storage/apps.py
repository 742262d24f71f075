from __future__ import annotations

from django.apps import AppConfig
from django.core import checks
from django.core.signals import setting_changed


class ImageKitStorageConfig(AppConfig):
    name = "django_imagekit_storage"
    label = "django_imagekit_storage"
    verbose_name = "ImageKit storage"

    def ready(self) -> None:
        from django_imagekit_storage import checks as imagekit_checks
        from django_imagekit_storage.conf import reset_storages_on_setting_change

        checks.register(imagekit_checks.check_storages, imagekit_checks.TAG)
        checks.register(imagekit_checks.check_deploy, imagekit_checks.TAG, deploy=True)

        setting_changed.connect(
            reset_storages_on_setting_change, dispatch_uid="django_imagekit_storage.reset_storages"
        )
