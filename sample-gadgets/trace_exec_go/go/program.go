// The WASM module of trace_exec_go: the kernel gives the arguments NUL-separated in
// "args"; this joins them with spaces, counts them into "args_count" and puts the base
// name of "filename" into "exe". Built by `gadget build` with IG's Go SDK.
package main

import (
	"bytes"
	"path"

	api "github.com/inspektor-gadget/inspektor-gadget/wasmapi/go"
)

const argsMax = 512

var argsF, argsSizeF, filenameF, countF, exeF api.Field

//go:wasmexport gadgetInit
func gadgetInit() int32 {
	ds, err := api.GetDataSource("exec")
	if err != nil {
		api.Errorf("no exec data source: %v", err)
		return 1
	}
	for name, f := range map[string]*api.Field{"args": &argsF, "args_size": &argsSizeF, "filename": &filenameF} {
		if *f, err = ds.GetField(name); err != nil {
			api.Errorf("no field %s: %v", name, err)
			return 1
		}
	}
	if countF, err = ds.AddField("args_count", api.Kind_Uint32); err != nil {
		return 1
	}
	if exeF, err = ds.AddField("exe", api.Kind_String); err != nil {
		return 1
	}
	err = ds.Subscribe(func(_ api.DataSource, data api.Data) {
		size, _ := argsSizeF.Uint32(data)
		buf := make([]byte, argsMax)
		n, err := argsF.Bytes(data, buf)
		if err != nil {
			api.Warnf("reading args: %v", err)
			return
		}
		if size > n {
			size = n
		}
		args := bytes.Split(bytes.TrimRight(buf[:size], "\x00"), []byte{0})
		if size == 0 {
			args = nil
		}
		argsF.SetString(data, string(bytes.Join(args, []byte(" "))))
		countF.SetUint32(data, uint32(len(args)))
		file, _ := filenameF.String(data, 256)
		exeF.SetString(data, path.Base(file))
	}, 0)
	if err != nil {
		return 1
	}
	return 0
}

func main() {}
