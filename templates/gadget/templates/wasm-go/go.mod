module {{ cookiecutter.name }}

go 1.26.0

require github.com/inspektor-gadget/inspektor-gadget v0.55.0
