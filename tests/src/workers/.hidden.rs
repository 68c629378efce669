compile_error!("auto_workers!() must skip this file");
