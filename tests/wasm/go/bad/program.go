// Misbehaves as the "mode" param says: oom, panic-init, panic-callback, fail-start.
package main

import api "github.com/inspektor-gadget/inspektor-gadget/wasmapi/go"

var keep [][]byte

//go:wasmexport gadgetInit
func gadgetInit() int32 {
	mode, _ := api.GetParamValue("mode", 32)
	switch mode {
	case "oom":
		for i := 0; i < 64; i++ {
			keep = append(keep, make([]byte, 1<<20))
		}
	case "panic-init":
		panic("boom in init")
	case "panic-callback":
		ds, _ := api.GetDataSource("events")
		ds.Subscribe(func(api.DataSource, api.Data) {
			var m map[string]int
			m["x"] = 1
		}, 0)
	}
	return 0
}

//go:wasmexport gadgetStart
func gadgetStart() int32 {
	mode, _ := api.GetParamValue("mode", 32)
	if mode == "fail-start" {
		api.Errorf("cannot start")
		return 1
	}
	return 0
}

func main() {}
