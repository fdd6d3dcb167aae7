from django.db import migrations

TEMPLATES = [
    ("order_placed", "email", "Order #$order_id confirmed",
     "Hello $customer_name,\n\nthank you for your order #$order_id of $total $currency.\n"
     "We will let you know when it ships."),
    ("order_placed", "sms", "Order #$order_id confirmed",
     "Order #$order_id confirmed: $total $currency."),
    ("order_shipped", "email", "Order #$order_id shipped",
     "Hello $customer_name,\n\nyour order #$order_id is on its way."),
    ("order_shipped", "sms", "Order #$order_id shipped", "Order #$order_id is on its way."),
    ("order_cancelled", "email", "Order #$order_id cancelled",
     "Hello $customer_name,\n\nyour order #$order_id has been cancelled."),
    ("order_cancelled", "sms", "Order #$order_id cancelled", "Order #$order_id cancelled."),
]


def create(apps, schema_editor):
    Template = apps.get_model("notifications", "NotificationTemplate")
    for key, channel, subject, body in TEMPLATES:
        Template.objects.update_or_create(
            key=key, channel=channel, defaults={"subject": subject, "body": body}
        )


def remove(apps, schema_editor):
    Template = apps.get_model("notifications", "NotificationTemplate")
    Template.objects.filter(key__in={t[0] for t in TEMPLATES}).delete()


class Migration(migrations.Migration):
    dependencies = [("notifications", "0001_initial")]
    operations = [migrations.RunPython(create, remove)]
