compile_error!("auto_workers!() must skip `_` directories");
