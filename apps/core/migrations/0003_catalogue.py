from django.db import migrations


def load_catalogue(apps, schema_editor):
    from apps.core.catalogue_data import load

    load(apps.get_model("core", "GpuModel"), apps.get_model("core", "Region"))


class Migration(migrations.Migration):
    dependencies = [("core", "0002_network")]

    operations = [migrations.RunPython(load_catalogue, migrations.RunPython.noop)]
