"""Model profiles: built-ins for the catalog, user TOML overrides key by key, bad files reported and skipped."""

from __future__ import annotations

from maider_tui import catalog
from maider_tui.profiles import BUILTIN, Profile, describe, image_for, load_profiles, profile_for


def write(paths, name: str, text: str) -> None:
    paths.profiles_dir.mkdir(parents=True, exist_ok=True)
    (paths.profiles_dir / name).write_text(text, encoding="utf-8")


def test_every_catalog_model_has_a_builtin_profile():
    assert {m.id for m in catalog.models()} == set(BUILTIN)
    for model in catalog.models():
        profile = BUILTIN[model.id]
        # a model that needs remote code must never get a profile that turns it off
        assert profile.trust_remote_code in (None, True) if model.trust_remote_code else True
        if profile.max_model_len:
            assert profile.max_model_len <= model.max_positions


def test_builtin_profile_without_user_files(paths):
    profile, problems = profile_for("deepseek-ai/DeepSeek-Coder-V2-Lite-Instruct", paths)
    assert problems == []
    assert profile.trust_remote_code is True and profile.source == "built-in"
    assert profile.env["PYTORCH_ALLOC_CONF"].startswith("expandable_segments:True")
    unknown, _ = profile_for("someone/unknown-model", paths)
    assert unknown == Profile("someone/unknown-model", source="none")


def test_user_file_overrides_key_by_key(paths):
    write(paths, "qwen3.toml", '''
model = "Qwen/Qwen3-Coder-30B-A3B-Instruct"
max_model_len = 32768
vllm_image = "vllm/vllm-openai:v0.11.2"
[env]
VLLM_ALLREDUCE_USE_SYMM_MEM = "0"
SAFETENSORS_FAST_GPU = "0"
''')
    profile, problems = profile_for("Qwen/Qwen3-Coder-30B-A3B-Instruct", paths)
    assert problems == []
    assert profile.max_model_len == 32768 and profile.source == "qwen3.toml"
    assert profile.env["VLLM_ALLREDUCE_USE_SYMM_MEM"] == "0"
    assert profile.env["SAFETENSORS_FAST_GPU"] == "0"  # the user's value wins
    assert "PYTORCH_ALLOC_CONF" in profile.env  # built-in variables the file did not name stay
    assert profile.extra_args == ("--max-num-seqs", "16")  # untouched key kept
    assert image_for(profile, "vllm/vllm-openai:v0.11.0") == "vllm/vllm-openai:v0.11.2"
    assert "image: vllm/vllm-openai:v0.11.2" in describe(profile)


def test_user_profile_for_a_model_outside_the_catalog(paths):
    write(paths, "mine.toml", 'model = "me/my-model"\ntrust_remote_code = true\nextra_args = ["--enforce-eager"]\n')
    profile, problems = profile_for("me/my-model", paths)
    assert problems == [] and profile.trust_remote_code and profile.extra_args == ("--enforce-eager",)


def test_bad_files_are_reported_with_file_and_key_and_skipped(paths):
    write(paths, "a_syntax.toml", 'model = "Qwen/Qwen2.5-Coder-7B-Instruct"\nenv = {\n')
    write(paths, "b_type.toml", 'model = "Qwen/Qwen2.5-Coder-7B-Instruct"\nmax_model_len = "lots"\n')
    write(paths, "c_unknown.toml", 'model = "Qwen/Qwen2.5-Coder-7B-Instruct"\ngpu_memory = 0.8\n')
    write(paths, "d_nomodel.toml", 'max_model_len = 4096\n')
    write(paths, "e_ok.toml", 'model = "Qwen/Qwen2.5-Coder-7B-Instruct"\nnotes = "fine"\n')
    profiles, problems = load_profiles(paths.profiles_dir)
    text = "\n".join(problems)
    assert len(problems) == 4, text
    assert "a_syntax.toml" in text and "b_type.toml: max_model_len must be an integer" in text
    assert "c_unknown.toml: unknown key 'gpu_memory'" in text and "d_nomodel.toml: missing key 'model'" in text
    assert all(p.endswith("skipped") for p in problems)
    profile = profiles["Qwen/Qwen2.5-Coder-7B-Instruct"]
    assert profile.notes == "fine" and profile.max_model_len is None and profile.source == "e_ok.toml"


def test_the_profile_goes_under_the_users_settings():
    from maider_tui.deploy.launch import resolve
    from maider_tui.settings import Settings

    settings = Settings.from_dict({"vllm": {"env": {"NCCL_P2P_DISABLE": "1", "SAFETENSORS_FAST_GPU": "0"},
                                            "extra_args": "--enforce-eager"}})
    model, gpu = catalog.model("Qwen/Qwen3-Coder-30B-A3B-Instruct"), catalog.gpu_type("g2-gpu-rtx4000a4-m")
    launch = resolve(model, gpu, settings, profile=BUILTIN[model.id])
    assert launch.config.max_model_len == 65536  # the profile's limit is the default context
    assert launch.config.env["NCCL_P2P_DISABLE"] == "1" and launch.config.env["SAFETENSORS_FAST_GPU"] == "0"
    assert launch.config.env["VLLM_SLEEP_WHEN_IDLE"] == "0"
    assert launch.config.max_num_seqs == 16 and launch.config.extra_args == ("--enforce-eager",)
    # a context typed below the limit is kept; the user's own max_num_seqs wins
    mine = Settings.from_dict({"vllm": {"max_num_seqs": 4}})
    again = resolve(model, gpu, mine, profile=BUILTIN[model.id], context=8192)
    assert again.config.max_model_len == 8192 and again.config.max_num_seqs == 4


def test_the_profile_trusts_remote_code_where_the_model_needs_it():
    from maider_tui.deploy.launch import resolve
    from maider_tui.settings import Settings

    spec, gpu = catalog.model("deepseek-ai/DeepSeek-Coder-V2-Lite-Instruct"), catalog.gpu_type("g2-gpu-rtx4000a2-s")
    assert resolve(spec, gpu, Settings(), profile=BUILTIN[spec.id]).config.trust_remote_code is True
    bare = resolve(spec, gpu, Settings(), profile=Profile(spec.id)).config
    assert bare.env == {} and bare.extra_args == ()


def test_launch_plans_and_switches_use_the_profile(paths):
    from maider_tui.ops.provision import LaunchPlan
    from maider_tui.ops.switch_model import plan_config
    from maider_tui.profiles import profile_for
    from maider_tui.settings import Settings

    paths.profiles_dir.mkdir(parents=True)
    (paths.profiles_dir / "coder14.toml").write_text(
        'model = "Qwen/Qwen2.5-Coder-14B-Instruct-AWQ"\n'
        'vllm_image = "vllm/vllm-openai:v0.11.1"\n'
        '[env]\nMY_FLAG = "1"\n')
    profile, problems = profile_for("Qwen/Qwen2.5-Coder-14B-Instruct-AWQ", paths)
    assert problems == []
    plan = LaunchPlan.from_settings(Settings(), gpu_type="g2-gpu-rtx4000a2-s",
                                    model="Qwen/Qwen2.5-Coder-14B-Instruct-AWQ", profile=profile)
    assert plan.config.env["MY_FLAG"] == "1"
    assert plan.compose.vllm_image == "vllm/vllm-openai:v0.11.1"
    switched = plan_config("Qwen/Qwen2.5-Coder-14B-Instruct-AWQ", "g2-gpu-rtx4000a2-s", settings=Settings(),
                           profile=profile)
    assert switched.env["MY_FLAG"] == "1"
    # The user's own settings win over the profile's.
    settings = Settings.from_dict({"vllm": {"env": {"MY_FLAG": "0"}}})
    mine = LaunchPlan.from_settings(settings, gpu_type="g2-gpu-rtx4000a2-s",
                                    model="Qwen/Qwen2.5-Coder-14B-Instruct-AWQ", profile=profile)
    assert mine.config.env["MY_FLAG"] == "0"


def test_deepseek_lite_gets_trust_remote_code_from_its_builtin_profile(paths):
    from maider_tui.ops.provision import LaunchPlan
    from maider_tui.profiles import profile_for
    from maider_tui.settings import Settings

    profile, _ = profile_for("deepseek-ai/DeepSeek-Coder-V2-Lite-Instruct", paths)
    plan = LaunchPlan.from_settings(Settings(), gpu_type="g2-gpu-rtx4000a2-s",
                                    model="deepseek-ai/DeepSeek-Coder-V2-Lite-Instruct", profile=profile)
    assert plan.config.trust_remote_code is True


def test_a_profile_file_nested_too_deep_or_a_pipe_is_reported_and_skipped(paths):
    import os

    paths.profiles_dir.mkdir(parents=True)
    (paths.profiles_dir / "deep.toml").write_text('model = "x/y"\nv = ' + "[" * 5000 + "]" * 5000 + "\n")
    os.mkfifo(paths.profiles_dir / "pipe.toml")  # opening it to read would wait for a writer forever
    profiles, problems = load_profiles(paths.profiles_dir)
    text = "\n".join(problems)
    assert "deep.toml" in text and "levels deep" in text
    assert "pipe.toml" in text and "not a regular file" in text
    assert "x/y" not in profiles
