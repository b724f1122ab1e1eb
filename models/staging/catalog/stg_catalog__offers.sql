with

source as (

    select * from {{ ref('offers') }}

),

renamed as (

    select
        offer_id,
        offer_code,
        offer_name,
        offer_description,
        lower(eligible_tier) as eligible_tier,
        {{ tier_rank('lower(eligible_tier)') }} as eligible_tier_rank,
        priority,
        discount_percent

    from source

)

select * from renamed
