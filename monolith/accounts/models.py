from django.db import models
from django.utils import timezone


class Customer(models.Model):
    email = models.EmailField(max_length=254, unique=True)
    name = models.CharField(max_length=200)
    phone = models.CharField(max_length=32, blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.name} <{self.email}>"
