"""The GPU catalogue and the regions, as shipped. A data migration loads
them; ``load()`` is idempotent and also updates changed rows."""

from decimal import Decimal

# slug, name, VRAM GB, stake weight (K-value), capacity weight, relative perf
GPU_MODELS = [
    ("h200", "NVIDIA H200 141GB", 141, 12, 12, 1150),
    ("h100-80gb", "NVIDIA H100 80GB", 80, 10, 10, 1000),
    ("a100-80gb", "NVIDIA A100 80GB", 80, 5, 5, 420),
    ("l40s", "NVIDIA L40S 48GB", 48, 3, 3, 360),
    ("a6000", "NVIDIA RTX A6000 48GB", 48, 2, 2, 230),
    ("rtx-4090", "NVIDIA GeForce RTX 4090 24GB", 24, 1, 1, 260),
    ("rtx-3090", "NVIDIA GeForce RTX 3090 24GB", 24, 1, 1, 150),
    ("t4", "NVIDIA T4 16GB", 16, 1, 1, 40),
]

# Dense float32 TFLOPS per GPU (no sparsity), from the vendors' data sheets
# (SXM parts where a model comes in several forms): what a node declaring
# the model must reach in its compute challenges.
FP32_TFLOPS = {
    "h200": Decimal("67.0"),
    "h100-80gb": Decimal("67.0"),
    "a100-80gb": Decimal("19.5"),
    "l40s": Decimal("91.6"),
    "a6000": Decimal("38.7"),
    "rtx-4090": Decimal("82.6"),
    "rtx-3090": Decimal("35.6"),
    "t4": Decimal("8.1"),
}

# code, name, latitude, longitude
REGIONS = [
    ("us-east", "US East (Virginia)", "38.94", "-77.45"),
    ("us-west", "US West (Oregon)", "45.60", "-121.18"),
    ("us-central", "US Central (Texas)", "32.78", "-96.80"),
    ("ca-central", "Canada (Montreal)", "45.50", "-73.57"),
    ("sa-east", "South America (São Paulo)", "-23.55", "-46.63"),
    ("eu-west", "Europe West (Dublin)", "53.35", "-6.26"),
    ("eu-central", "Europe Central (Frankfurt)", "50.11", "8.68"),
    ("eu-north", "Europe North (Stockholm)", "59.33", "18.07"),
    ("me-central", "Middle East (Dubai)", "25.20", "55.27"),
    ("ap-south", "Asia Pacific (Mumbai)", "19.08", "72.88"),
    ("ap-southeast", "Asia Pacific (Singapore)", "1.35", "103.82"),
    ("ap-east", "Asia Pacific (Hong Kong)", "22.32", "114.17"),
    ("ap-northeast", "Asia Pacific (Tokyo)", "35.68", "139.69"),
    ("ap-oceania", "Asia Pacific (Sydney)", "-33.87", "151.21"),
]


def load(GpuModel, Region) -> None:
    # Migrations call this with the model as it was then: the throughput
    # column is set only once it exists.
    has_tflops = any(f.name == "fp32_tflops" for f in GpuModel._meta.get_fields())
    for slug, name, vram, stake, capacity, perf in GPU_MODELS:
        defaults = {
            "name": name,
            "vram_gb": vram,
            "stake_weight": stake,
            "capacity_weight": capacity,
            "perf_score": perf,
        }
        if has_tflops:
            defaults["fp32_tflops"] = FP32_TFLOPS[slug]
        GpuModel.objects.update_or_create(slug=slug, defaults=defaults)
    for code, name, lat, lon in REGIONS:
        Region.objects.update_or_create(
            code=code, defaults={"name": name, "latitude": Decimal(lat), "longitude": Decimal(lon)}
        )
