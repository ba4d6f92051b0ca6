"""The device service (`edge run`): its lifecycle, its status reporting, its lawful-use gate."""
