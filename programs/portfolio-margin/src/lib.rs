use anchor_lang::prelude::*;
declare_id!("PMarg1n111111111111111111111111111111111111");
#[program]
pub mod portfolio_margin {
    use super::*;
    pub fn noop(_ctx: Context<Noop>) -> Result<()> { Ok(()) }
}
#[derive(Accounts)]
pub struct Noop {}
