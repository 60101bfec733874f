from django.contrib.auth.models import AbstractBaseUser

from prompts.models import ModelType, Prompt


def prompt_create(
    *,
    prompt_text: str,
    negative_prompt: str = "",
    name: str = "",
    model_type: str = ModelType.TRANSFER1,
    inputs: dict | None = None,
    parameters: dict | None = None,
    owner: AbstractBaseUser | None = None,
    parent: Prompt | None = None,
) -> Prompt:
    """A validated, saved prompt; a blank name is generated from the text."""
    prompt = Prompt(
        prompt_text=prompt_text,
        negative_prompt=negative_prompt,
        name=name,
        model_type=model_type,
        inputs=inputs or {},
        parameters=parameters or {},
        owner=owner,
        parent=parent,
    )
    prompt.full_clean()
    prompt.save()
    return prompt
