"""The stand-in's `hf download` (the Hugging Face CLI a node's `cosmos_node download` runs), as a subprocess."""

from tests.standin import run_standin


def test_it_fetches_into_the_hub_cache_once(tmp_path):
    env = {"HF_HOME": str(tmp_path / "hf")}
    first = run_standin(tmp_path, "hf", "download", "nvidia/Cosmos3-Nano", env=env)
    assert first.returncode == 0, first.stderr
    folder = tmp_path / "hf" / "hub" / "models--nvidia--Cosmos3-Nano"
    commit = (folder / "refs" / "main").read_text()
    assert first.stdout == f"{folder / 'snapshots' / commit}\n"
    assert "Fetching 64 files: 100%|" in first.stderr  # 32 GiB, two files a GiB
    again = run_standin(tmp_path, "hf", "download", "nvidia/Cosmos3-Nano", env=env)
    assert again.returncode == 0 and again.stdout == first.stdout
    assert "Fetching" not in again.stderr  # found in the cache


def test_it_fills_a_local_folder_when_given_one(tmp_path):
    result = run_standin(tmp_path, "hf", "download", "google-t5/t5-11b", "--local-dir", str(tmp_path / "t5"))
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"{tmp_path / 't5'}\n" and (tmp_path / "t5").is_dir()


def test_it_refuses_a_gated_repository_without_a_token(tmp_path):
    env = {"HF_HOME": str(tmp_path / "hf"), "HF_TOKEN": ""}  # whatever this machine has set
    refused = run_standin(tmp_path, "hf", "download", "nvidia/Cosmos-Guardrail1", env=env)
    assert refused.returncode == 1
    assert "Error: Access denied. Model 'nvidia/Cosmos-Guardrail1' requires approval." in refused.stderr
    allowed = run_standin(
        tmp_path, "hf", "download", "nvidia/Cosmos-Guardrail1", env={**env, "HF_TOKEN": "hf_x"}
    )
    assert allowed.returncode == 0, allowed.stderr
