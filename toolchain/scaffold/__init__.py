"""`gadget init`: a new gadget project (program, gadget.yaml, tests, CI workflow) from the
cookiecutter template in ``templates/gadget``.

    from gadgetsmith.toolchain.scaffold import init_project
    init_project("my_gadget", {"template": "uprobe", "description": "..."})
"""

from gadgetsmith.toolchain.scaffold.project import (
    InitResult,
    TemplateInfo,
    check_image,
    check_name,
    init_project,
    list_templates,
    questions,
    read_answers_file,
    template_dir,
)

__all__ = [
    "InitResult",
    "TemplateInfo",
    "check_image",
    "check_name",
    "init_project",
    "list_templates",
    "questions",
    "read_answers_file",
    "template_dir",
]
